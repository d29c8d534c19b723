//! The sans-IO half of the resolver: what a refresh's answer means for the backend list.

use std::net::SocketAddr;

use super::LookupError;

/// The last good backend list, and whether a new answer changes it.
///
/// An answer is sorted and deduplicated first, so the same addresses in another order (DNS
/// servers rotate answers) are not a change. A failed or empty answer keeps the last good list.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    last: Option<Vec<SocketAddr>>,
}

impl Tracker {
    /// Takes one refresh's result: `Ok(Some(list))` when the list changed (the new list, sorted),
    /// `Ok(None)` when it did not, `Err` when the refresh failed or found no backends (the last
    /// good list stays).
    pub fn apply(
        &mut self,
        result: Result<Vec<SocketAddr>, LookupError>,
    ) -> Result<Option<Vec<SocketAddr>>, LookupError> {
        let mut list = result?;
        list.sort_unstable();
        list.dedup();
        if list.is_empty() {
            return Err(LookupError::Empty);
        }
        if self.last.as_ref() == Some(&list) {
            return Ok(None);
        }
        self.last = Some(list.clone());
        Ok(Some(list))
    }

    /// The last good list, sorted; `None` until a refresh has succeeded.
    pub fn current(&self) -> Option<&[SocketAddr]> {
        self.last.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn failed() -> Result<Vec<SocketAddr>, LookupError> {
        Err(LookupError::Timeout(std::time::Duration::from_secs(1)))
    }

    #[test]
    fn first_answer_is_an_update_sorted_and_deduplicated() {
        let mut t = Tracker::default();
        let got = t.apply(Ok(addrs(&["10.0.0.2:4317", "10.0.0.1:4317", "10.0.0.2:4317"])));
        assert_eq!(got, Ok(Some(addrs(&["10.0.0.1:4317", "10.0.0.2:4317"]))));
        assert_eq!(t.current(), Some(&addrs(&["10.0.0.1:4317", "10.0.0.2:4317"])[..]));
    }

    #[test]
    fn same_set_in_another_order_is_no_update() {
        let mut t = Tracker::default();
        t.apply(Ok(addrs(&["10.0.0.1:4317", "[::1]:4317", "10.0.0.2:4317"]))).unwrap();
        let got = t.apply(Ok(addrs(&["[::1]:4317", "10.0.0.2:4317", "10.0.0.1:4317", "[::1]:4317"])));
        assert_eq!(got, Ok(None));
    }

    #[test]
    fn added_removed_and_replaced_are_updates() {
        let mut t = Tracker::default();
        t.apply(Ok(addrs(&["10.0.0.1:4317"]))).unwrap();
        let steps: [&[&str]; 3] = [&["10.0.0.1:4317", "10.0.0.2:4317"], &["10.0.0.2:4317"], &["10.0.0.3:4317"]];
        for step in steps {
            assert_eq!(t.apply(Ok(addrs(step))), Ok(Some(addrs(step))), "{step:?}");
        }
    }

    #[test]
    fn port_change_is_an_update() {
        let mut t = Tracker::default();
        t.apply(Ok(addrs(&["10.0.0.1:4317"]))).unwrap();
        assert_eq!(t.apply(Ok(addrs(&["10.0.0.1:5317"]))), Ok(Some(addrs(&["10.0.0.1:5317"]))));
    }

    #[test]
    fn failure_and_empty_keep_the_last_good_list() {
        let mut t = Tracker::default();
        t.apply(Ok(addrs(&["10.0.0.1:4317"]))).unwrap();
        assert!(t.apply(failed()).is_err());
        assert_eq!(t.apply(Ok(Vec::new())), Err(LookupError::Empty));
        assert_eq!(t.current(), Some(&addrs(&["10.0.0.1:4317"])[..]));
        assert_eq!(t.apply(Ok(addrs(&["10.0.0.1:4317"]))), Ok(None));
    }

    #[test]
    fn failure_before_any_success_then_success() {
        let mut t = Tracker::default();
        assert!(t.apply(failed()).is_err());
        assert_eq!(t.current(), None);
        assert_eq!(t.apply(Ok(addrs(&["10.0.0.1:4317"]))), Ok(Some(addrs(&["10.0.0.1:4317"]))));
    }
}
