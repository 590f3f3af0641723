async fn quote(client: &Legacy, sku: Sku) -> Result<Price, LegacyError> {
    crate::observability::selftime::__private::external(
            "legacy",
            async move {
                #[allow(
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::let_unit_value,
                    clippy::unreachable,
                    clippy::needless_return
                )]
                if false {
                    let __selftime_fake_return: Result<Price, LegacyError> = ::core::unreachable!();
                    return __selftime_fake_return;
                }
                client.quote(sku).await
            },
        )
        .at({
            static __SELFTIME_SITE: crate::observability::selftime::__private::Site = crate::observability::selftime::__private::Site::new(
                "quote",
                ::core::module_path!(),
            );
            &__SELFTIME_SITE
        })
        .await
}
