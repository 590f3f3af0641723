async fn checkout_v2(cart: Cart) -> Receipt {
    ::payments::selftime::__private::Spec::new(
            "checkout.v2",
            ::payments::selftime::__private::span!(DEBUG, "checkout.v2"),
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
                Receipt::from(cart)
            },
            {
                #[allow(unused_imports)]
                use ::payments::selftime::__private::{IsResult as _, NotResult as _};
                (&::payments::selftime::__private::Probe::<Receipt>::new())
                    .__selftime_classifier()
            },
        )
        .await
}
