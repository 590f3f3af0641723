fn get<'a>(
    &'a self,
    key: &'a str,
) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
    ::selftime::__private::boxed(
        ::selftime::__private::external(
                {
                    static __SELFTIME_SITE: ::selftime::__private::Site = ::selftime::__private::Site::new(
                        "get",
                        ::core::module_path!(),
                        "redis",
                    );
                    &__SELFTIME_SITE
                },
                ::selftime::__private::returned(move || -> Pin<
                    Box<dyn Future<Output = Option<String>> + Send + 'a>,
                > {
                    if let Some(hit) = self.local.get(key) {
                        return Box::pin(std::future::ready(Some(hit.clone())));
                    }
                    Box::pin(self.conn.get(key))
                }),
            )
            .until_wake(),
    )
}
