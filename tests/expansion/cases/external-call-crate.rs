#[external_call("legacy", crate = "crate::observability::selftime")]
async fn quote(client: &Legacy, sku: Sku) -> Result<Price, LegacyError> {
    client.quote(sku).await
}
