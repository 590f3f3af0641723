/// Loads a page of orders.
#[inline]
pub(crate) fn orders<'a, S>(store: &'a S, page: usize) -> Vec<&'a Order>
where
    S: Store + ?Sized,
{
    #![allow(clippy::cast_possible_wrap)]
    ::selftime::__private::Spec::new(
            "orders",
            ::selftime::__private::span!(WARN, "orders"),
        )
        .run_sync(
            move || {
                #[allow(
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::let_unit_value,
                    clippy::unreachable,
                    clippy::needless_return
                )]
                if false {
                    {
                        #[allow(unused_imports)]
                        use ::selftime::__private::{
                            ReturnsAFuture as _, ReturnsAValue as _,
                        };
                        (&::selftime::__private::Probe::<Vec<&'a Order>>::new())
                            .__selftime_returns_a_value();
                    }
                    let __selftime_fake_return: Vec<&'a Order> = ::core::unreachable!();
                    return __selftime_fake_return;
                }
                store.orders().skip(page * 50).take(50).collect()
            },
            {
                #[allow(unused_imports)]
                use ::selftime::__private::{IsResult as _, NotResult as _};
                (&::selftime::__private::Probe::<Vec<&'a Order>>::new())
                    .__selftime_classifier()
            },
        )
}
