#[timed_handler]
fn load<'life0, 'async_trait>(
    &'life0 self,
    key: u32,
) -> ::core::pin::Pin<
    Box<
        dyn ::core::future::Future<Output = Result<u32, Oops>>
            + ::core::marker::Send
            + 'async_trait,
    >,
>
where
    'life0: 'async_trait,
    Self: 'async_trait,
{
    Box::pin(async move {
        let __self = self;
        let key = key;
        let __ret: Result<u32, Oops> = { __self.backend.load(key).await };
        #[allow(unreachable_code)]
        __ret
    })
}
