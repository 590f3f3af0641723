fn login(user: &str) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    ::selftime::__private::boxed(
        ::selftime::__private::Spec::new(
                "login",
                ::selftime::__private::span!(INFO, "login"),
            )
            .run_returned(
                move || -> Pin<Box<dyn Future<Output = u32> + Send>> {
                    let fut = authenticate(user.to_owned());
                    Box::pin(fut)
                },
                {
                    #[allow(unused_imports)]
                    use ::selftime::__private::{IsResult as _, NotResult as _};
                    (&::selftime::__private::Probe::<u32>::new()).__selftime_classifier()
                },
            ),
    )
}
