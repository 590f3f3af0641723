async fn get(key: &str) -> Option<String> {
    ::selftime::__private::external(
            {
                static __SELFTIME_SITE: ::selftime::__private::Site = ::selftime::__private::Site::new(
                    "get",
                    ::core::module_path!(),
                    "redis",
                );
                &__SELFTIME_SITE
            },
            async move {
                #[allow(
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::let_unit_value,
                    clippy::unreachable,
                    clippy::needless_return
                )]
                if false {
                    let __selftime_fake_return: Option<String> = ::core::unreachable!();
                    return __selftime_fake_return;
                }
                client().get(key).await
            },
        )
        .until_wake()
        .await
}
