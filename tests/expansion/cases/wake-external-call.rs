// `until_wake`: the call ends when its dependency wakes the task.
#[external_call("redis", until_wake)]
async fn get(key: &str) -> Option<String> {
    client().get(key).await
}
