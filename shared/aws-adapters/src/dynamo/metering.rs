//! What the store's requests cost, counted two ways: the capacity units DynamoDB
//! reports (`ReturnConsumedCapacity = TOTAL` on every call), and units metered from the
//! requests' own items by DynamoDB's on-demand rules, for benchmarks and cost figures
//! where the server's report cannot be trusted (moto reports fixed or no units). See
//! [`DynamoStore::metered`](super::DynamoStore::metered) for the rules.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity};

use super::codec::Item;

/// The store's counters, in milli-units: reported units come in halves and small
/// fractions, and milli-units keep them exact enough in an integer.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    read_milli: AtomicU64,
    write_milli: AtomicU64,
    metered_read_milli: AtomicU64,
    metered_write_milli: AtomicU64,
    requests: AtomicU64,
}

impl Meter {
    /// Reported `(read units, write units)`.
    pub(crate) fn consumed(&self) -> (f64, f64) {
        (
            self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }

    /// Metered `(read units, write units, requests)`.
    pub(crate) fn metered(&self) -> (f64, f64, u64) {
        (
            self.metered_read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            self.metered_write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            self.requests.load(Ordering::Relaxed),
        )
    }

    /// Every counter back to zero.
    pub(crate) fn reset(&self) {
        for c in [
            &self.read_milli,
            &self.write_milli,
            &self.metered_read_milli,
            &self.metered_write_milli,
            &self.requests,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Records a read request: the units DynamoDB reported, and one metered unit (the
    /// minimum), for reads whose items are not metered one by one.
    pub(crate) fn record_read(&self, cc: Option<&ConsumedCapacity>) {
        add(&self.read_milli, cc);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.meter_read(0, true);
    }

    /// A read request whose items the caller has: metered by their summed sizes, as
    /// DynamoDB bills a GetItem or one Query page.
    pub(crate) fn record_read_items(
        &self,
        cc: Option<&ConsumedCapacity>,
        items: &[Item],
        consistent: bool,
    ) {
        add(&self.read_milli, cc);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.meter_read(items.iter().map(item_size).sum(), consistent);
    }

    /// One BatchGetItem call: every table's reported units, and, when the answer had
    /// items for the table (`got`), one request metered item by item, because
    /// BatchGetItem bills each item on its own.
    pub(crate) fn record_batch_get(&self, reported: &[ConsumedCapacity], got: Option<&[Item]>) {
        for cc in reported {
            add(&self.read_milli, Some(cc));
        }
        if let Some(got) = got {
            self.requests.fetch_add(1, Ordering::Relaxed);
            for item in got {
                self.meter_read(item_size(item), true);
            }
        }
    }

    /// Records a write request: reported units, and the metered minimum of one unit.
    pub(crate) fn record_write(&self, cc: Option<&ConsumedCapacity>) {
        self.record_write_of(cc, 0);
    }

    /// Records a single-item write request of an item of `size` bytes: reported units,
    /// and units metered by the size.
    pub(crate) fn record_write_of(&self, cc: Option<&ConsumedCapacity>, size: usize) {
        add(&self.write_milli, cc);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.meter_write(&[size], false);
    }

    /// One TransactWriteItems of items of these sizes: every table's reported units,
    /// and each item metered at the transactional (double) rate.
    pub(crate) fn record_transaction(&self, reported: &[ConsumedCapacity], sizes: &[usize]) {
        for cc in reported {
            add(&self.write_milli, Some(cc));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.meter_write(sizes, true);
    }

    /// Meters a read of items totalling `bytes`.
    fn meter_read(&self, bytes: usize, consistent: bool) {
        let units = bytes.div_ceil(4096).max(1) as u64 * 1000;
        let milli = if consistent { units } else { units / 2 };
        self.metered_read_milli.fetch_add(milli, Ordering::Relaxed);
    }

    /// Meters the write of items of these sizes.
    fn meter_write(&self, sizes: &[usize], transactional: bool) {
        let units: u64 = sizes.iter().map(|b| b.div_ceil(1024).max(1) as u64).sum();
        let units = if transactional { units * 2 } else { units };
        self.metered_write_milli
            .fetch_add(units * 1000, Ordering::Relaxed);
    }
}

/// Adds reported units, if any, to a milli-unit counter.
fn add(counter: &AtomicU64, cc: Option<&ConsumedCapacity>) {
    if let Some(units) = cc.and_then(|c| c.capacity_units()) {
        let milli = (units * 1000.0).round();
        if milli.is_finite() && milli > 0.0 {
            counter.fetch_add(milli as u64, Ordering::Relaxed);
        }
    }
}

/// An item's size as DynamoDB bills it: each attribute's name plus its value (strings
/// and binaries by length, numbers by about one byte per two digits plus one, maps and
/// lists by their members plus a few bytes).
pub(crate) fn item_size(item: &Item) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
            AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
            AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, v)| k.len() + value(v) + 1).sum::<usize>()
            }
            AttributeValue::L(l) => 3 + l.iter().map(|v| value(v) + 1).sum::<usize>(),
            _ => 1,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_cost_double_index_reads_half_and_batch_gets_per_item() {
        let meter = Meter::default();
        let item: Item = Item::from([("data".to_string(), AttributeValue::S("x".repeat(1500)))]);
        // 1,504 bytes: two write units, doubled in a transaction.
        meter.record_transaction(&[], &[item_size(&item)]);
        // One read unit, halved for an eventually consistent index read.
        meter.record_read_items(None, std::slice::from_ref(&item), false);
        // BatchGetItem: one unit per item, however small.
        meter.record_batch_get(&[], Some(&[item.clone(), item]));
        assert_eq!(meter.metered(), (2.5, 4.0, 3));
        meter.reset();
        assert_eq!(meter.metered(), (0.0, 0.0, 0));
    }
}
