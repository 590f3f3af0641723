fn login(user: String) -> LoginFuture {
    ::selftime::__private::boxed(
        ::selftime::__private::Spec::new(
                "login",
                ::selftime::__private::span!(INFO, "login"),
            )
            .run_returned(
                move || -> LoginFuture { Box::pin(authenticate(user)) },
                {
                    #[allow(unused_imports)]
                    use ::selftime::__private::{IsResult as _, NotResult as _};
                    (&::selftime::__private::Probe::<
                        <LoginFuture as ::core::future::Future>::Output,
                    >::new())
                        .__selftime_classifier()
                },
            ),
    )
}
