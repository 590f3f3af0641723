async fn ping(conn: &mut Conn) {
    ::selftime::__private::Spec::new("ping", ::selftime::__private::span!(INFO, "ping"))
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
                    let __selftime_fake_return: () = ::core::unreachable!();
                    return __selftime_fake_return;
                }
                conn.send(b"pong").await;
            },
            {
                #[allow(unused_imports)]
                use ::selftime::__private::{IsResult as _, NotResult as _};
                (&::selftime::__private::Probe::<()>::new()).__selftime_classifier()
            },
        )
        .await
}
