async fn get_session(redis: &Client, id: &str) -> Option<Session> {
    let __selftime_call = ::selftime::__private::begin_call({
        static __SELFTIME_SITE: ::selftime::__private::Site = ::selftime::__private::Site::new(
            "get_session",
            ::core::module_path!(),
            "redis",
        );
        &__SELFTIME_SITE
    });
    let raw = redis.get(id).await?;
    Session::decode(&raw)
}
