use std::time::Instant;
use vigie_domain::DecodeLimits;
use vigie_pipeline::Source;
use vigie_source_kafka::{KafkaConfig, KafkaSource};
use vigie_tests::{Record, TestBroker};

#[tokio::test(flavor = "multi_thread")]
async fn probe() {
    let broker = TestBroker::start().unwrap();
    broker.create_topic("t", 3).await.unwrap();
    broker.produce_many("t", &[Record::new("x").to_partition(0)]).await.unwrap();
    for (label, props) in [("default session timeout", Default::default()), ("session.timeout.ms=6000", TestBroker::consumer_properties()), ("again 6000 same group", TestBroker::consumer_properties())] {
        let group = if label.starts_with("again") { "g1".to_string() } else { if label.starts_with("session") { "g1".to_string() } else { format!("g-{label}") } };
        let config = KafkaConfig { brokers: broker.bootstrap.clone(), topics: vec!["t".into()], group_id: group, properties: props, ..KafkaConfig::default() };
        let t = Instant::now();
        let mut source = KafkaSource::connect(config, DecodeLimits::default()).await.unwrap();
        let connected = t.elapsed();
        loop { let b = source.next_batch().await.unwrap().unwrap(); if !b.checkpoint.is_empty() { break } }
        println!("{label}: connect {connected:?}, first message after {:?}", t.elapsed());
    }
}
