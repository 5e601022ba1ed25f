//! A segment trie over rule globs, so finding the first matching rule among 10,000 costs about
//! the depth of the path, not the number of rules.
//!
//! The walk is depth-first (so it can skip subtrees that cannot beat the best rule found), and a
//! node reached through `**` is walked from each segment position at most once: without that,
//! several `**` in one glob meant trying every way to split the path between them (a power of
//! the path length). So a path of n segments costs O(n × trie nodes) whatever the globs say.

use super::glob::{Segment, Wildcard};
use std::collections::HashMap;

/// Rule numbers are positions in file order; the lowest matching one wins.
pub type RuleId = u32;

/// A node's position in [`PathIndex::nodes`].
type NodeId = u32;

const ROOT: NodeId = 0;

#[derive(Debug)]
pub struct PathIndex {
    /// The trie, root first; children always come after their parent.
    nodes: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    literal: HashMap<Box<str>, NodeId>,
    /// `*` and `{owner}`
    any: Option<NodeId>,
    wildcard: Vec<(Wildcard, NodeId)>,
    /// `**`: entered without consuming a segment.
    globstar: Option<NodeId>,
    /// Reached through `**`, so it may consume any number of segments before its children.
    loops: bool,
    /// Rules whose glob ends here, ascending.
    ends_here: Vec<RuleId>,
    /// The lowest rule anywhere below (and here): lets a search drop nodes that cannot win.
    min_below: RuleId,
}

impl Node {
    /// Nothing follows: no glob goes on past this node.
    fn is_last(&self) -> bool {
        self.literal.is_empty()
            && self.any.is_none()
            && self.wildcard.is_empty()
            && self.globstar.is_none()
    }

    fn new(loops: bool) -> Self {
        Node {
            literal: HashMap::new(),
            any: None,
            wildcard: Vec::new(),
            globstar: None,
            loops,
            ends_here: Vec::new(),
            min_below: RuleId::MAX,
        }
    }
}

impl Default for PathIndex {
    fn default() -> Self {
        PathIndex {
            nodes: vec![Node::new(false)],
        }
    }
}

impl PathIndex {
    /// Add a rule; rules must be added in ascending id order.
    pub fn insert(&mut self, segments: &[Segment], id: RuleId) {
        let mut at = ROOT;
        for segment in segments {
            self.node_mut(at).min_below = self.node(at).min_below.min(id);
            at = self.child(at, segment);
        }
        let node = self.node_mut(at);
        node.min_below = node.min_below.min(id);
        node.ends_here.push(id);
    }

    /// The child of `at` for `segment`, created when missing.
    fn child(&mut self, at: NodeId, segment: &Segment) -> NodeId {
        let existing = {
            let node = self.node(at);
            match segment {
                Segment::Literal(text) => node.literal.get(text.as_str()).copied(),
                Segment::Any | Segment::Owner => node.any,
                Segment::GlobStar => node.globstar,
                Segment::Wildcard(w) => node.wildcard.iter().find(|(x, _)| x == w).map(|p| p.1),
            }
        };
        if let Some(child) = existing {
            return child;
        }
        let child = self.nodes.len() as NodeId;
        self.nodes
            .push(Node::new(matches!(segment, Segment::GlobStar)));
        let node = self.node_mut(at);
        match segment {
            Segment::Literal(text) => {
                node.literal.insert(text.as_str().into(), child);
            }
            Segment::Any | Segment::Owner => node.any = Some(child),
            Segment::GlobStar => node.globstar = Some(child),
            Segment::Wildcard(w) => node.wildcard.push((w.clone(), child)),
        }
        child
    }

    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    /// The lowest rule below `best` whose glob matches `segments` and that `accept` takes.
    pub fn first_match(
        &self,
        segments: &[&str],
        best: RuleId,
        accept: &impl Fn(RuleId) -> bool,
    ) -> RuleId {
        let mut walk = Walk {
            index: self,
            segments,
            best,
            accept,
            walked_from: HashMap::new(),
        };
        walk.enter(ROOT, 0);
        walk.best
    }
}

/// One search through the trie.
struct Walk<'a, F> {
    index: &'a PathIndex,
    segments: &'a [&'a str],
    best: RuleId,
    accept: &'a F,
    /// For each `**` node reached, the lowest position it was walked from: it has been walked
    /// from every later position too, and walking it again cannot find a lower rule.
    walked_from: HashMap<NodeId, usize>,
}

impl<F: Fn(RuleId) -> bool> Walk<'_, F> {
    /// Arrive at node `id` with `segments[at..]` still to match.
    fn enter(&mut self, id: NodeId, at: usize) {
        let node = self.index.node(id);
        if node.min_below >= self.best {
            return;
        }
        if !node.loops {
            return self.step(node, at);
        }
        if node.is_last() {
            // A trailing `**` takes whatever is left.
            return self.finish(node);
        }
        let walked = self.walked_from.get(&id).copied().unwrap_or(usize::MAX);
        if walked <= at {
            return;
        }
        self.walked_from.insert(id, at);
        // `**` may take any number of segments before the node's own children go on.
        for from in at..walked.min(self.segments.len() + 1) {
            if node.min_below >= self.best {
                break;
            }
            self.step(node, from);
        }
    }

    /// What `node` makes of `segments[at..]`: end here, or hand the next segment to the
    /// children it fits; a `**` child may also take over without consuming anything.
    fn step(&mut self, node: &Node, at: usize) {
        match self.segments.get(at) {
            None => self.finish(node),
            Some(segment) => {
                if let Some(&child) = node.literal.get(*segment) {
                    self.enter(child, at + 1);
                }
                if let Some(child) = node.any {
                    self.enter(child, at + 1);
                }
                for (pattern, child) in &node.wildcard {
                    if pattern.matches(segment) {
                        self.enter(*child, at + 1);
                    }
                }
            }
        }
        if let Some(child) = node.globstar {
            self.enter(child, at);
        }
    }

    /// The path ends at `node`: its first rule that is better and accepted wins.
    fn finish(&mut self, node: &Node) {
        if let Some(&id) = node
            .ends_here
            .iter()
            .take_while(|&&id| id < self.best)
            .find(|&&id| (self.accept)(id))
        {
            self.best = id;
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

    /// What a glob means, written the slow and obvious way: `**` tries every split.
    fn reference(glob: &[Segment], path: &[&str]) -> bool {
        match glob.split_first() {
            None => path.is_empty(),
            Some((Segment::GlobStar, rest)) => {
                (0..=path.len()).any(|k| reference(rest, &path[k..]))
            }
            Some((segment, rest)) => path.split_first().is_some_and(|(first, after)| {
                let here = match segment {
                    Segment::Literal(text) => text == first,
                    Segment::Any | Segment::Owner => true,
                    Segment::Wildcard(w) => w.matches(first),
                    Segment::GlobStar => unreachable!(),
                };
                here && reference(rest, after)
            }),
        }
    }

    /// A small deterministic generator, so a failure names a reproducible case.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % n as u64) as usize
        }

        fn path(&mut self, parts: &[&'static str], max_len: usize) -> Vec<&'static str> {
            let len = self.below(max_len + 1);
            (0..len).map(|_| parts[self.below(parts.len())]).collect()
        }
    }

    #[test]
    fn matches_what_globs_mean_with_any_mix_of_globstars() {
        const GLOB_PARTS: [&str; 8] = ["a", "b", "*", "**", "**", "a*", "*b", "{owner}"];
        const PATH_PARTS: [&str; 5] = ["a", "b", "ab", "ba", "c"];
        let mut rng = Lcg(13);
        for _ in 0..1500 {
            let mut globs = Vec::new();
            while globs.len() < 1 + rng.below(6) {
                let text = format!("/{}", rng.path(&GLOB_PARTS, 5).join("/"));
                if let Ok(glob) = parse(&text, false) {
                    globs.push((text, glob));
                }
            }
            let mut ix = PathIndex::default();
            for (id, (_, glob)) in globs.iter().enumerate() {
                ix.insert(glob, id as RuleId);
            }
            // Some rules refused by method or host, and sometimes a better rule found already.
            let refused = rng.below(1 << globs.len());
            let bound = [RuleId::MAX, rng.below(globs.len()) as RuleId][rng.below(2)];
            let accept = |id: RuleId| refused & (1 << id) == 0;
            for _ in 0..40 {
                let path = rng.path(&PATH_PARTS, 8);
                let expected = globs
                    .iter()
                    .enumerate()
                    .map(|(id, (_, glob))| (id as RuleId, glob))
                    .find(|(id, glob)| *id < bound && accept(*id) && reference(glob, &path))
                    .map_or(bound, |(id, _)| id);
                assert_eq!(
                    ix.first_match(&path, bound, &accept),
                    expected,
                    "globs {:?}, path /{}, refused mask {refused:b}, bound {bound}",
                    globs.iter().map(|(t, _)| t).collect::<Vec<_>>(),
                    path.join("/")
                );
            }
        }
    }

    #[test]
    fn tricky_globstar_equivalences() {
        let ix = index(&["/**/**"]);
        for path in ["/", "/a", "/a/b/c"] {
            assert_eq!(first(&ix, path), Some(0), "{path}");
        }
        // `**` next to `**`, at either end or in the middle, may match nothing at all.
        let ix = index(&["/a/**/**/b", "/**/a/**", "/x/**"]);
        assert_eq!(first(&ix, "/a/b"), Some(0));
        assert_eq!(first(&ix, "/a/q/r/b"), Some(0));
        assert_eq!(first(&ix, "/a"), Some(1));
        assert_eq!(first(&ix, "/q/a"), Some(1));
        assert_eq!(first(&ix, "/x"), Some(2));
        assert_eq!(first(&ix, "/x/a"), Some(1));
        // A later glob reached through more `**` still loses to an earlier one.
        let ix = index(&["/**/z", "/**/a/**/z", "/a/**"]);
        assert_eq!(first(&ix, "/a/a/z"), Some(0));
        let ix = index(&["/**/a/**/z", "/**/z", "/a/**"]);
        assert_eq!(first(&ix, "/a/a/z"), Some(0));
        assert_eq!(first(&ix, "/b/z"), Some(1));
        assert_eq!(first(&ix, "/a/b"), Some(2));
        // A rule refused by `accept` lets the next matching one through, loops included.
        let segs = ["a", "a", "z"];
        assert_eq!(ix.first_match(&segs, RuleId::MAX, &|id| id != 0), 1);
        assert_eq!(ix.first_match(&segs, RuleId::MAX, &|id| id == 2), 2);
        // Owner and wildcard segments around `**`.
        let ix = index(&["/{owner}/**/*.css", "/*/**"]);
        assert_eq!(first(&ix, "/mona/site.css"), Some(0));
        assert_eq!(first(&ix, "/mona/a/b/site.css"), Some(0));
        assert_eq!(first(&ix, "/mona/a/b/site.js"), Some(1));
        assert_eq!(first(&ix, "/"), None);
    }

    #[test]
    fn many_globstars_on_a_long_path_stay_linear() {
        let ix = index(&[
            "/**/a/**/a/**/z",
            "/**/x/**/y/**/z/**/w",
            "/**/a/**/a/**/a/**/a/**/q",
        ]);
        // 8 KB of `/a`: a backtracking walk would not finish; this is a few thousand steps.
        let mut segs = vec!["a"; 4096];
        assert_eq!(first(&ix, &format!("/{}", segs.join("/"))), None);
        segs.push("z");
        assert_eq!(ix.first_match(&segs, RuleId::MAX, &|_| true), 0);
        *segs.last_mut().unwrap() = "q";
        assert_eq!(ix.first_match(&segs, RuleId::MAX, &|_| true), 2);
    }
}
