async fn get_session(redis: &Client, id: &str) -> Option<Session> {
    ::selftime::__private::external(
            "redis",
            async move {
                #[allow(
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::let_unit_value,
                    clippy::unreachable,
                    clippy::needless_return
                )]
                if false {
                    let __selftime_fake_return: Option<Session> = ::core::unreachable!();
                    return __selftime_fake_return;
                }
                let raw = redis.get(id).await?;
                Session::decode(&raw)
            },
        )
        .at({
            static __SELFTIME_SITE: ::selftime::__private::Site = ::selftime::__private::Site::new(
                "get_session",
                ::core::module_path!(),
            );
            &__SELFTIME_SITE
        })
        .await
}
