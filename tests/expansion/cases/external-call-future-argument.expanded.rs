fn ask(&self, question: Question) -> LegacyFuture {
    ::selftime::__private::boxed(
        ::selftime::__private::external(
            {
                static __SELFTIME_SITE: ::selftime::__private::Site = ::selftime::__private::Site::new(
                    "ask",
                    ::core::module_path!(),
                    "legacy",
                );
                &__SELFTIME_SITE
            },
            ::selftime::__private::returned(move || -> LegacyFuture {
                self.client.ask(question)
            }),
        ),
    )
}
