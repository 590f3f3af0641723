fn lookup(cache: &Cache, key: u32) -> Lookup<'_> {
    ::selftime::__private::boxed(
        ::selftime::__private::Spec::new(
                "lookup",
                ::selftime::__private::span!(INFO, "lookup"),
            )
            .run_returned(
                move || -> Lookup<'_> {
                    if let Some(value) = cache.get(key) {
                        return Box::pin(async move { value });
                    }
                    Box::pin(async move { cache.fetch(key).await })
                },
                {
                    #[allow(unused_imports)]
                    use ::selftime::__private::{IsResult as _, NotResult as _};
                    (&::selftime::__private::Probe::<
                        <Lookup<'_> as ::core::future::Future>::Output,
                    >::new())
                        .__selftime_classifier()
                },
            ),
    )
}
