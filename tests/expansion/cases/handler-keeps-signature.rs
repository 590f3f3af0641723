/// Loads a page of orders.
#[timed_handler(level = "warn")]
#[inline]
pub(crate) fn orders<'a, S>(store: &'a S, page: usize) -> Vec<&'a Order>
where
    S: Store + ?Sized,
{
    #![allow(clippy::cast_possible_wrap)]
    store.orders().skip(page * 50).take(50).collect()
}
