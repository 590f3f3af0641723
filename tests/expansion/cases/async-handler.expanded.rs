pub async fn checkout(cart: Cart) -> Receipt {
    ::selftime::__private::Spec::new(
            "checkout",
            ::selftime::__private::span!(INFO, "checkout"),
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
                    let __selftime_fake_return: Receipt = ::core::unreachable!();
                    return __selftime_fake_return;
                }
                let total = prices::total(&cart).await;
                Receipt { total }
            },
            {
                #[allow(unused_imports)]
                use ::selftime::__private::{IsResult as _, NotResult as _};
                (&::selftime::__private::Probe::<Receipt>::new()).__selftime_classifier()
            },
        )
        .await
}
