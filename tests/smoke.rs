#[selftime::timed_handler]
async fn handler() -> u32 {
    1
}

#[tokio::test]
async fn runs() {
    assert_eq!(handler().await, 1);
}
