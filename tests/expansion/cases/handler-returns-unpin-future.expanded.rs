fn cached(key: u32) -> impl Future<Output = Option<u32>> + Unpin {
    ::selftime::__private::boxed(
        ::selftime::__private::Spec::new(
                "cached",
                ::selftime::__private::span!(INFO, "cached"),
            )
            .run_returned(
                move || { std::future::ready(CACHE.get(key)) },
                {
                    #[allow(unused_imports)]
                    use ::selftime::__private::{IsResult as _, NotResult as _};
                    (&::selftime::__private::Probe::<Option<u32>>::new())
                        .__selftime_classifier()
                },
            ),
    )
}
