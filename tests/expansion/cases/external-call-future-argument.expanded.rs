fn ask(&self, question: Question) -> LegacyFuture {
    ::selftime::__private::boxed(
        ::selftime::__private::external(
                "legacy",
                ::selftime::__private::returned(move || -> LegacyFuture {
                    self.client.ask(question)
                }),
            )
            .at({
                static __SELFTIME_SITE: ::selftime::__private::Site = ::selftime::__private::Site::new(
                    "ask",
                    ::core::module_path!(),
                );
                &__SELFTIME_SITE
            }),
    )
}
