fn render(page: &Page) -> String {
    ::selftime::__private::Spec::new(
            "render",
            ::selftime::__private::span!(INFO, "render"),
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
                        (&::selftime::__private::Probe::<String>::new())
                            .__selftime_returns_a_value();
                    }
                    let __selftime_fake_return: String = ::core::unreachable!();
                    return __selftime_fake_return;
                }
                let header = templates::header(page);
                format!("{header}{}", page.body)
            },
            {
                #[allow(unused_imports)]
                use ::selftime::__private::{IsResult as _, NotResult as _};
                (&::selftime::__private::Probe::<String>::new()).__selftime_classifier()
            },
        )
}
