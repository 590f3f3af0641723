fn fetch(id: u64) -> impl Future<Output = Option<Item>> + Send {
    ::selftime::__private::Spec::new(
            "fetch",
            ::selftime::__private::span!(INFO, "fetch"),
        )
        .run_returned(
            move || {
                let key = id.to_string();
                async move { cache::get(&key).await }
            },
            {
                #[allow(unused_imports)]
                use ::selftime::__private::{IsResult as _, NotResult as _};
                (&::selftime::__private::Probe::<Option<Item>>::new())
                    .__selftime_classifier()
            },
        )
}
