fn search(client: &Search, q: String) -> impl Future<Output = Hits> + '_ {
    ::selftime::__private::external(
            "search",
            ::selftime::__private::returned(move || { client.query(q) }),
        )
        .at({
            static __SELFTIME_SITE: ::selftime::__private::Site = ::selftime::__private::Site::new(
                "search",
                ::core::module_path!(),
            );
            &__SELFTIME_SITE
        })
}
