//! Keyset paging for the lists that live services answer from memory (the processor's live
//! tasks, the gateway's workers): sort by one value and the id, and continue after the last
//! row a page held. A row added or removed between pages moves no other row across the
//! boundary, which offset paging would.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Most rows one page holds.
pub const MAX_LIMIT: usize = 1000;
/// Rows a page holds when the caller does not say.
pub const DEFAULT_LIMIT: usize = 100;

/// Which way a list is sorted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// The value a row is sorted by: a number (times, counts, percentages) or a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortValue {
    Number(f64),
    Text(String),
}

impl SortValue {
    fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => a.total_cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            (Self::Number(_), Self::Text(_)) => Ordering::Less,
            (Self::Text(_), Self::Number(_)) => Ordering::Greater,
        }
    }
}

impl From<f64> for SortValue {
    fn from(value: f64) -> Self {
        Self::Number(value)
    }
}

impl From<&str> for SortValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

/// A page of a sorted list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Rows the filters select, on every page.
    pub total: u64,
    /// Whether rows follow this page.
    pub truncated: bool,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A cursor that no page gave.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cursor {0:?} is not one this list gave")]
pub struct BadCursor(pub String);

/// A limit outside 1 to [`MAX_LIMIT`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("limit {0}: use 1 to {MAX_LIMIT}")]
pub struct BadLimit(pub usize);

/// `limit`, or the default, within bounds.
pub fn limit(asked: Option<usize>) -> Result<usize, BadLimit> {
    match asked.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => Ok(limit),
        other => Err(BadLimit(other)),
    }
}

/// Sorts `rows` (each its sort value, its id and the row) by value then id, and returns the
/// `limit` rows after `cursor`.
pub fn page<T>(
    mut rows: Vec<(SortValue, &str, T)>,
    order: Order,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<T>, BadCursor> {
    let after = match cursor {
        Some(text) => Some(serde_json::from_str::<(SortValue, String)>(text).map_err(|_| BadCursor(text.to_owned()))?),
        None => None,
    };
    let compare = |a: (&SortValue, &str), b: (&SortValue, &str)| {
        let ascending = a.0.compare(b.0).then_with(|| a.1.cmp(b.1));
        match order {
            Order::Asc => ascending,
            Order::Desc => ascending.reverse(),
        }
    };
    let total = rows.len() as u64;
    rows.sort_by(|a, b| compare((&a.0, a.1), (&b.0, b.1)));
    let start = match &after {
        Some((value, id)) => rows.partition_point(|row| compare((&row.0, row.1), (value, id)) != Ordering::Greater),
        None => 0,
    };
    let truncated = rows.len() > start + limit;
    let next_cursor = match truncated {
        true => rows.get(start + limit - 1).and_then(|(value, id, _)| serde_json::to_string(&(value, id)).ok()),
        false => None,
    };
    let items = rows.into_iter().skip(start).take(limit).map(|(_, _, row)| row).collect();
    Ok(Page { items, total, truncated, next_cursor })
}

/// The page that one holder of every row would give, from the pages that holders of
/// disjoint parts of the rows gave for the same sort, order, cursor and limit (the fleet's
/// partitions): each holds its first `limit` rows after the cursor, so the page's rows are
/// among them. `key` is a row's sort value and id.
pub fn merge<T>(pages: Vec<Page<T>>, key: impl Fn(&T) -> (SortValue, String), order: Order, limit: usize) -> Page<T> {
    let total = pages.iter().map(|page| page.total).sum();
    let cut = pages.iter().any(|page| page.truncated);
    let mut rows: Vec<((SortValue, String), T)> =
        pages.into_iter().flat_map(|page| page.items).map(|row| (key(&row), row)).collect();
    rows.sort_by(|a, b| {
        let ascending = a.0.0.compare(&b.0.0).then_with(|| a.0.1.cmp(&b.0.1));
        match order {
            Order::Asc => ascending,
            Order::Desc => ascending.reverse(),
        }
    });
    let truncated = cut || rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = match truncated {
        true => rows.last().and_then(|(key, _)| serde_json::to_string(key).ok()),
        false => None,
    };
    Page { items: rows.into_iter().map(|(_, row)| row).collect(), total, truncated, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[(f64, &'static str)]) -> Vec<(SortValue, &'static str, &'static str)> {
        values.iter().map(|(value, id)| (SortValue::Number(*value), *id, *id)).collect()
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let data = [(3.0, "c"), (1.0, "a"), (2.0, "b2"), (2.0, "b1"), (5.0, "e")];
        for order in [Order::Asc, Order::Desc] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = page(rows(&data), order, cursor.as_deref(), 2).expect("page");
                assert_eq!(page.total, 5);
                seen.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            let expected = match order {
                Order::Asc => vec!["a", "b1", "b2", "c", "e"],
                Order::Desc => vec!["e", "c", "b2", "b1", "a"],
            };
            assert_eq!(seen, expected);
        }
    }

    #[test]
    fn merged_pages_of_disjoint_holders_equal_one_holders_pages() {
        let data: Vec<(f64, String)> = (0..23).map(|n| (f64::from(n % 5), format!("r{n:02}"))).collect();
        let rows_of = |part: Option<usize>| -> Vec<(SortValue, &str, (f64, String))> {
            data.iter()
                .enumerate()
                .filter(|(n, _)| part.is_none_or(|part| n % 3 == part))
                .map(|(_, (value, id))| (SortValue::Number(*value), id.as_str(), (*value, id.clone())))
                .collect()
        };
        for order in [Order::Asc, Order::Desc] {
            let mut cursor: Option<String> = None;
            let mut pages = 0;
            loop {
                let single = page(rows_of(None), order, cursor.as_deref(), 4).expect("page");
                let parts =
                    (0..3).map(|part| page(rows_of(Some(part)), order, cursor.as_deref(), 4).expect("page")).collect();
                let merged = merge(parts, |(value, id)| (SortValue::Number(*value), id.clone()), order, 4);
                assert_eq!(merged, single, "page {pages} {order:?}");
                pages += 1;
                match single.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(pages, 6);
        }
    }

    #[test]
    fn a_row_removed_between_pages_moves_no_other_row() {
        let first = page(rows(&[(1.0, "a"), (2.0, "b"), (3.0, "c"), (4.0, "d")]), Order::Asc, None, 2).expect("page");
        assert_eq!(first.items, vec!["a", "b"]);
        let cursor = first.next_cursor.expect("more");
        let second = page(rows(&[(2.0, "b"), (3.0, "c"), (4.0, "d")]), Order::Asc, Some(&cursor), 2).expect("page");
        assert_eq!((second.items, second.truncated), (vec!["c", "d"], false));
    }

    #[test]
    fn bad_cursors_and_limits_are_refused() {
        assert!(page(rows(&[(1.0, "a")]), Order::Asc, Some("nope"), 2).is_err());
        assert_eq!(limit(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit(Some(0)), Err(BadLimit(0)));
        assert_eq!(limit(Some(MAX_LIMIT + 1)), Err(BadLimit(MAX_LIMIT + 1)));
    }
}
