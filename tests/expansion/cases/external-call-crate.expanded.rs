async fn quote(client: &Legacy, sku: Sku) -> Result<Price, LegacyError> {
    let __selftime_call = crate::observability::selftime::__private::begin_call({
        static __SELFTIME_SITE: crate::observability::selftime::__private::Site = crate::observability::selftime::__private::Site::new(
            "quote",
            ::core::module_path!(),
            "legacy",
        );
        &__SELFTIME_SITE
    });
    client.quote(sku).await
}
