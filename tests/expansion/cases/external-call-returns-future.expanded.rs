fn search(client: &Search, q: String) -> impl Future<Output = Hits> + '_ {
    ::selftime::__private::external(
        {
            static __SELFTIME_SITE: ::selftime::__private::Site = ::selftime::__private::Site::new(
                "search",
                ::core::module_path!(),
                "search",
            );
            &__SELFTIME_SITE
        },
        ::selftime::__private::returned(move || { client.query(q) }),
    )
}
