//! What proves a cloud resource is ours: the two tags every create puts on what it makes, the
//! machine's name and this store's id (made once per `$DOCKER_CONFIG/euca/`), so that two
//! stores on one account, or two machines of one store, never touch each other's resources.

/// Tag naming the machine a resource belongs to.
pub const MACHINE_TAG: &str = "docker-euca:machine";
/// Tag naming the store (one `$DOCKER_CONFIG/euca/`) whose machine it is.
pub const STORE_TAG: &str = "docker-euca:store";

/// The owner of a machine's resources: machine name and store id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub machine: String,
    pub store: String,
}

/// What a resource's tags say about whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Both tags, with our values.
    Ours,
    /// No docker-euca tag at all: only a journalled unique name can prove it ours.
    Untagged,
    /// Our machine tag and no store tag: made by a docker-euca from before store ids. Ours
    /// only when the record holds the id the cloud answered its create with.
    Legacy,
    /// A docker-euca tag with another machine or store: never touch it.
    Someone,
}

impl Ownership {
    pub fn new(machine: impl Into<String>, store: impl Into<String>) -> Ownership {
        Ownership {
            machine: machine.into(),
            store: store.into(),
        }
    }

    /// The tags to put on what a create makes.
    pub fn tags(&self) -> [(&str, &str); 2] {
        [(MACHINE_TAG, &self.machine), (STORE_TAG, &self.store)]
    }

    pub fn judge(&self, tags: &[(String, String)]) -> Verdict {
        let get = |k: &str| {
            tags.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        match (get(MACHINE_TAG), get(STORE_TAG)) {
            (Some(m), Some(s)) if m == self.machine && s == self.store => Verdict::Ours,
            (None, None) => Verdict::Untagged,
            (Some(m), None) if m == self.machine => Verdict::Legacy,
            _ => Verdict::Someone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn both_tags_with_our_values_prove_ownership() {
        let me = Ownership::new("web1", "s1");
        assert_eq!(
            me.judge(&tags(&[
                (MACHINE_TAG, "web1"),
                (STORE_TAG, "s1"),
                ("Name", "x")
            ])),
            Verdict::Ours
        );
        assert_eq!(me.judge(&tags(&[("Name", "web1")])), Verdict::Untagged);
        assert_eq!(me.judge(&[]), Verdict::Untagged);
        assert_eq!(me.judge(&tags(&[(MACHINE_TAG, "web1")])), Verdict::Legacy);
    }

    #[test]
    fn another_machine_or_store_or_half_a_proof_is_someone_else() {
        let me = Ownership::new("web1", "s1");
        for other in [
            tags(&[(MACHINE_TAG, "web2"), (STORE_TAG, "s1")]),
            tags(&[(MACHINE_TAG, "web1"), (STORE_TAG, "s2")]),
            tags(&[(MACHINE_TAG, "web2")]),
            tags(&[(STORE_TAG, "s1")]),
        ] {
            assert_eq!(me.judge(&other), Verdict::Someone, "{other:?}");
        }
    }
}
