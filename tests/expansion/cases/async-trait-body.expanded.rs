fn load<'life0, 'async_trait>(
    &'life0 self,
    key: u32,
) -> ::core::pin::Pin<
    Box<
        dyn ::core::future::Future<
            Output = Result<u32, Oops>,
        > + ::core::marker::Send + 'async_trait,
    >,
>
where
    'life0: 'async_trait,
    Self: 'async_trait,
{
    Box::pin(
        ::selftime::__private::Spec::new(
                "load",
                ::selftime::__private::span!(INFO, "load"),
            )
            .run_async(
                async move {
                    let __self = self;
                    let key = key;
                    let __ret: Result<u32, Oops> = { __self.backend.load(key).await };
                    #[allow(unreachable_code)] __ret
                },
                {
                    #[allow(unused_imports)]
                    use ::selftime::__private::{IsResult as _, NotResult as _};
                    (&::selftime::__private::Probe::<Result<u32, Oops>>::new())
                        .__selftime_classifier()
                },
            ),
    )
}
