//! Reading labelled JSONL: posts through the production decoder and analyzer, labels on
//! the side.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use vigie_domain::{decode_post, AnalyzedPost, DecodeLimits, Origin, Post};
use vigie_tokenize::Analyzer;

use crate::EvalError;

/// One post of the labelled stream, analyzed, with its ground truth.
#[derive(Debug, Clone)]
pub struct LabelledPost {
    /// The post as the detector sees it.
    pub analyzed: AnalyzedPost,
    /// `label_event`; `None` for background.
    pub event: Option<String>,
    /// `label_narrative`; `None` for background.
    pub narrative: Option<String>,
}

/// A labelled stream in file order.
#[derive(Debug, Clone, Default)]
pub struct Labelled {
    /// The valid posts.
    pub posts: Vec<LabelledPost>,
    /// Lines the decoder rejected.
    pub rejected: u64,
}

/// Reads the files in order, decodes and analyzes every line (on `threads` threads),
/// and keeps the labels.
pub fn load_labelled(
    files: &[PathBuf],
    analyzer: &Analyzer,
    threads: usize,
) -> Result<Labelled, EvalError> {
    let mut raw: Vec<(Post, Option<String>, Option<String>)> = Vec::new();
    let mut rejected = 0;
    let limits = DecodeLimits::default();
    for path in files {
        let reader = open(path).map_err(|source| EvalError::Read {
            path: path.clone(),
            source,
        })?;
        for (number, line) in reader.lines().enumerate() {
            let line = line.map_err(|source| EvalError::Read {
                path: path.clone(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let origin = Origin::File {
                path: path.display().to_string(),
                line: number as u64 + 1,
            };
            let Ok(post) = decode_post(line.as_bytes(), &limits, origin) else {
                rejected += 1;
                continue;
            };
            let (event, narrative) = labels(&line);
            raw.push((post, event, narrative));
        }
    }
    let threads = threads.max(1);
    let chunk = raw.len().div_ceil(threads).max(1);
    let mut posts: Vec<LabelledPost> = Vec::with_capacity(raw.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = raw
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(post, event, narrative)| LabelledPost {
                            analyzed: AnalyzedPost {
                                analysis: analyzer.analyze_post(post),
                                post: post.clone(),
                            },
                            event: event.clone(),
                            narrative: narrative.clone(),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            posts.extend(handle.join().expect("analysis threads do not panic"));
        }
    });
    Ok(Labelled { posts, rejected })
}

fn open(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let read = file.read(&mut magic)?;
    let file = File::open(path)?;
    Ok(if read == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// Returns `label_event` and `label_narrative` of a line (strings or numbers).
fn labels(line: &str) -> (Option<String>, Option<String>) {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str(line) else {
        return (None, None);
    };
    let label = |field: &str| match object.get(field) {
        Some(serde_json::Value::String(text)) if !text.is_empty() => Some(text.clone()),
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    (label("label_event"), label("label_narrative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_beside_the_post() {
        assert_eq!(
            labels(r#"{"id":1,"label_event":"e","label_narrative":42}"#),
            (Some("e".into()), Some("42".into()))
        );
        assert_eq!(labels(r#"{"id":1,"label_event":null}"#), (None, None));
    }
}
