//! Analysis stage: the language and terms of each post, once, on every core; the analyzed
//! posts go, as one shared batch, to the index and to detection.

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use vigie_domain::{AnalyzedPost, Post};
use vigie_pipeline::{Batch, Outlet, Stage, StreamEnd};
use vigie_tokenize::Analyzer;

use crate::metrics::Metrics;

/// Analyzes posts; emits them shared (`Arc`) so the index and detection read one copy.
pub struct AnalyzeStage {
    analyzer: Arc<Analyzer>,
    metrics: Metrics,
    /// The names of the downstream stages, for the queue-depth gauge.
    downstream: Vec<&'static str>,
}

impl AnalyzeStage {
    /// Returns the stage; `downstream` names the stages its outlet feeds, in order.
    pub fn new(analyzer: Arc<Analyzer>, metrics: Metrics, downstream: Vec<&'static str>) -> Self {
        AnalyzeStage {
            analyzer,
            metrics,
            downstream,
        }
    }
}

impl Stage for AnalyzeStage {
    type Input = Post;
    type Output = Arc<AnalyzedPost>;
    type Outcome = ();
    type Error = anyhow::Error;
    const NAME: &'static str = "analyze";

    fn process(
        &mut self,
        mut batch: Batch<Post>,
        out: &mut Outlet<Arc<AnalyzedPost>>,
    ) -> anyhow::Result<()> {
        let posts = std::mem::take(&mut batch.items);
        let analyzed = analyze_parallel(&self.analyzer, posts);
        if let Some(newest) = analyzed.iter().map(|p| p.post.created_at.timestamp()).max() {
            if newest > self.metrics.newest_event_time.get() {
                self.metrics.newest_event_time.set(newest);
            }
        }
        out.emit(batch.with_items(analyzed));
        for (stage, queued) in self.downstream.iter().zip(out.queued()) {
            self.metrics
                .queue_depth
                .with_label_values(&[stage])
                .set(queued as i64);
        }
        Ok(())
    }

    fn on_tick(&mut self, _: Instant, _: &mut Outlet<Arc<AnalyzedPost>>) -> anyhow::Result<()> {
        Ok(())
    }

    fn finish(self, _: StreamEnd, _: &mut Outlet<Arc<AnalyzedPost>>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Analyzes posts on every core (rayon's pool): analysis is independent per post. Order
/// is preserved, so later stages see posts in source order.
pub(crate) fn analyze_parallel(analyzer: &Analyzer, posts: Vec<Post>) -> Vec<Arc<AnalyzedPost>> {
    // Below this, handing work to other threads costs more than it saves.
    const PARALLEL_FROM: usize = 64;
    let analyze = |post: Post| {
        let analysis = analyzer.analyze_post(&post);
        Arc::new(AnalyzedPost { post, analysis })
    };
    if posts.len() < PARALLEL_FROM {
        return posts.into_iter().map(analyze).collect();
    }
    posts.into_par_iter().map(analyze).collect()
}
