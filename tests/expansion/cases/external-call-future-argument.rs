#[external_call("legacy", future)]
fn ask(&self, question: Question) -> LegacyFuture {
    self.client.ask(question)
}
