async fn checkout(cart: u32) -> u32 {
    ::selftime::__private::Spec::new(
            "checkout",
            ::selftime::__private::span!(split, INFO, "checkout"),
        )
        .with_split()
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
                    let __selftime_fake_return: u32 = ::core::unreachable!();
                    return __selftime_fake_return;
                }
                cart
            },
            {
                #[allow(unused_imports)]
                use ::selftime::__private::{IsResult as _, NotResult as _};
                (&::selftime::__private::Probe::<u32>::new()).__selftime_classifier()
            },
        )
        .await
}
