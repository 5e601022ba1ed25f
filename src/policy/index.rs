//! A segment trie over rule globs, so finding the first matching rule among 10,000 costs about
//! the depth of the path, not the number of rules.

use super::glob::{Segment, Wildcard};
use std::collections::HashMap;

/// Rule numbers are positions in file order; the lowest matching one wins.
pub type RuleId = u32;

#[derive(Debug, Default)]
pub struct PathIndex {
    root: Node,
}

#[derive(Debug)]
struct Node {
    literal: HashMap<Box<str>, Node>,
    /// `*` and `{owner}`
    any: Option<Box<Node>>,
    wildcard: Vec<(Wildcard, Node)>,
    /// `**`: reached after consuming zero or more segments.
    globstar: Option<Box<Node>>,
    /// Rules whose glob ends here, ascending.
    ends_here: Vec<RuleId>,
    /// The lowest rule anywhere below (and here): lets a search skip subtrees that cannot win.
    min_below: RuleId,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            literal: HashMap::new(),
            any: None,
            wildcard: Vec::new(),
            globstar: None,
            ends_here: Vec::new(),
            min_below: RuleId::MAX,
        }
    }
}

impl PathIndex {
    /// Add a rule; rules must be added in ascending id order.
    pub fn insert(&mut self, segments: &[Segment], id: RuleId) {
        let mut node = &mut self.root;
        for segment in segments {
            node.min_below = node.min_below.min(id);
            node = match segment {
                Segment::Literal(text) => node.literal.entry(text.as_str().into()).or_default(),
                Segment::Any | Segment::Owner => node.any.get_or_insert_with(Box::default),
                Segment::GlobStar => node.globstar.get_or_insert_with(Box::default),
                Segment::Wildcard(w) => {
                    let at = match node.wildcard.iter().position(|(x, _)| x == w) {
                        Some(at) => at,
                        None => {
                            node.wildcard.push((w.clone(), Node::default()));
                            node.wildcard.len() - 1
                        }
                    };
                    &mut node.wildcard[at].1
                }
            };
        }
        node.min_below = node.min_below.min(id);
        node.ends_here.push(id);
    }

    /// The lowest rule below `best` whose glob matches `segments` and that `accept` takes.
    pub fn first_match(
        &self,
        segments: &[&str],
        best: RuleId,
        accept: &impl Fn(RuleId) -> bool,
    ) -> RuleId {
        let mut best = best;
        walk(&self.root, segments, &mut best, accept);
        best
    }
}

fn walk(node: &Node, segments: &[&str], best: &mut RuleId, accept: &impl Fn(RuleId) -> bool) {
    if node.min_below >= *best {
        return;
    }
    match segments.split_first() {
        None => {
            if let Some(&id) = node
                .ends_here
                .iter()
                .take_while(|&&id| id < *best)
                .find(|&&id| accept(id))
            {
                *best = id;
            }
        }
        Some((first, rest)) => {
            if let Some(child) = node.literal.get(*first) {
                walk(child, rest, best, accept);
            }
            if let Some(child) = &node.any {
                walk(child, rest, best, accept);
            }
            for (pattern, child) in &node.wildcard {
                if pattern.matches(first) {
                    walk(child, rest, best, accept);
                }
            }
        }
    }
    if let Some(child) = &node.globstar {
        for skip in 0..=segments.len() {
            walk(child, &segments[skip..], best, accept);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::glob::parse;
    use super::*;

    fn index(globs: &[&str]) -> PathIndex {
        let mut ix = PathIndex::default();
        for (i, g) in globs.iter().enumerate() {
            ix.insert(&parse(g, false).unwrap(), i as RuleId);
        }
        ix
    }

    fn first(ix: &PathIndex, path: &str) -> Option<RuleId> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let id = ix.first_match(&segs, RuleId::MAX, &|_| true);
        (id != RuleId::MAX).then_some(id)
    }

    #[test]
    fn lowest_matching_rule_wins() {
        let ix = index(&[
            "/admin/public",
            "/admin/**",
            "/api/*/items",
            "/{owner}/**",
            "/static/*.css",
            "/**/secret",
        ]);
        assert_eq!(first(&ix, "/admin"), Some(1));
        assert_eq!(first(&ix, "/admin/public"), Some(0));
        assert_eq!(first(&ix, "/admin/x/y"), Some(1));
        assert_eq!(first(&ix, "/api/v1/items"), Some(2));
        assert_eq!(first(&ix, "/api/v1/items/3"), Some(3));
        assert_eq!(first(&ix, "/static/site.css"), Some(3));
        assert_eq!(first(&ix, "/"), None);
        assert_eq!(first(&ix, "/a/b/secret"), Some(3));
        let ix = index(&["/static/*.css", "/**/secret", "/"]);
        assert_eq!(first(&ix, "/static/site.css"), Some(0));
        assert_eq!(first(&ix, "/static/site.js"), None);
        assert_eq!(first(&ix, "/secret"), Some(1));
        assert_eq!(first(&ix, "/a/b/secret"), Some(1));
        assert_eq!(first(&ix, "/"), Some(2));
    }

    #[test]
    fn accept_filters_candidates() {
        let ix = index(&["/a/**", "/a/b", "/**"]);
        let segs = ["a", "b"];
        assert_eq!(ix.first_match(&segs, RuleId::MAX, &|id| id != 0), 1);
        assert_eq!(ix.first_match(&segs, RuleId::MAX, &|id| id == 2), 2);
        assert_eq!(ix.first_match(&segs, 1, &|id| id != 0), 1);
    }
}
