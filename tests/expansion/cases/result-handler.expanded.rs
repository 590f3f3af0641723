async fn login(form: Form) -> Result<Session, AuthError> {
    ::selftime::__private::Spec::new(
            "login",
            ::selftime::__private::span!(INFO, "login"),
        )
        .run_async(
            async move {
                #[allow(
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::let_unit_value,
                    clippy::unreachable,
                    clippy::needless_return
                )]
                if false {
                    let __selftime_fake_return: Result<Session, AuthError> = ::core::unreachable!();
                    return __selftime_fake_return;
                }
                let user = users::find(&form.user).await?;
                user.verify(&form.password)?;
                Ok(Session::new(user))
            },
            {
                #[allow(unused_imports)]
                use ::selftime::__private::{IsResult as _, NotResult as _};
                (&::selftime::__private::Probe::<Result<Session, AuthError>>::new())
                    .__selftime_classifier()
            },
        )
        .await
}
