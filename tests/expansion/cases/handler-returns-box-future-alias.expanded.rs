fn load(&self, key: u32) -> BoxFuture<'_, Result<u32, Error>> {
    ::selftime::__private::boxed(
        ::selftime::__private::Spec::new(
                "load",
                ::selftime::__private::span!(INFO, "load"),
            )
            .run_returned(
                move || -> BoxFuture<'_, Result<u32, Error>> {
                    self.backend.load(key).boxed()
                },
                {
                    #[allow(unused_imports)]
                    use ::selftime::__private::{IsResult as _, NotResult as _};
                    (&::selftime::__private::Probe::<
                        <BoxFuture<
                            '_,
                            Result<u32, Error>,
                        > as ::core::future::Future>::Output,
                    >::new())
                        .__selftime_classifier()
                },
            ),
    )
}
