#!/usr/bin/env python3
"""Writes dashboards/vigie-pipeline.json and dashboards/vigie-narratives.json.

The dashboards are generated so that every panel follows the same conventions (datasource
variable, instance filter, units, alert annotations); edit this file, run it, commit both.
tests/tests/deploy.rs evaluates every expression against a real Prometheus.
"""
import json
import pathlib

OUT = pathlib.Path(__file__).resolve().parent.parent / "dashboards"
I = 'instance=~"$instance"'


def ds():
    return {"type": "prometheus", "uid": "${datasource}"}


def panel(pid, title, exprs, x, y, w=12, h=8, unit="short", kind="timeseries", desc=""):
    return {
        "id": pid, "type": kind, "title": title, "description": desc, "datasource": ds(),
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [{"refId": chr(65 + i), "datasource": ds(), "expr": e, "legendFormat": l}
                    for i, (e, l) in enumerate(exprs)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
    }


def dashboard(uid, title, desc, panels):
    annotation = {
        "name": "Narrative alerts", "datasource": ds(), "enable": True, "iconColor": "red",
        "expr": 'sum by (kind, severity) (increase(vigie_alert_notifications_total{' + I
                + ', kind=~"firing|resolved"}[1m])) > 0',
        "step": "60s", "titleFormat": "{{kind}} ({{severity}})", "textFormat": "Vigie alert notification",
    }
    return {
        "uid": uid, "title": title, "description": desc, "tags": ["vigie"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            {"name": "instance", "label": "Instance", "type": "query", "datasource": ds(),
             "query": "label_values(vigie_build_info, instance)", "refresh": 2, "includeAll": True,
             "multi": True, "current": {}},
        ]},
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
             "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
             "type": "dashboard"},
            annotation,
        ]},
        "panels": panels,
    }


def rate(metric, extra=""):
    return f"rate({metric}{{{I}{extra}}}[$__rate_interval])"


PIPELINE = [
    panel(1, "Ingest rate per topic",
          [(f"sum by (topic) ({rate('vigie_source_messages_consumed_total')})", "{{topic}}")], 0, 0,
          unit="ops", desc="Messages read per second from each Kafka topic or input file."),
    panel(2, "Consumer lag per partition",
          [(f"max by (topic, partition) (vigie_source_consumer_lag_messages{{{I}}})", "{{topic}}/{{partition}}")],
          12, 0, desc="Messages behind the partition's high-water mark (Kafka source only)."),
    panel(3, "Rejected by reason",
          [(f"sum by (reason) ({rate('vigie_posts_rejected_total')})", "{{reason}}")], 0, 8, unit="ops",
          desc="Inputs failing validation; each is kept in the dead-letter topic or rejected.jsonl."),
    panel(4, "Index commit latency",
          [(f"histogram_quantile(0.5, sum by (le) ({rate('vigie_index_commit_duration_seconds_bucket')}))", "p50"),
           (f"histogram_quantile(0.99, sum by (le) ({rate('vigie_index_commit_duration_seconds_bucket')}))", "p99")],
          12, 8, unit="s"),
    panel(5, "Posts indexed",
          [(f"sum({rate('vigie_index_posts_indexed_total')})", "posts/s"),
           (f"sum(vigie_index_documents{{{I}}})", "documents")], 0, 16),
    panel(6, "Queue depths",
          [(f"sum by (queue) (vigie_pipeline_queue_depth_batches{{{I}}})", "{{queue}}"),
           (f"sum by (sink) (vigie_alert_outbox_depth{{{I}}})", "outbox {{sink}}")], 12, 16,
          desc="Batches waiting for the indexer; notifications waiting in the alert outbox."),
    panel(7, "Alert delivery failures",
          [("sum by (sink, outcome) (" + rate("vigie_alert_deliveries_total", ', outcome!="delivered"') + ")",
            "{{sink}} {{outcome}}")], 0, 24, unit="ops", desc="Retried and dead-lettered deliveries per sink."),
    panel(8, "Alert delivery latency (p90)",
          [(f"histogram_quantile(0.9, sum by (le, sink) ({rate('vigie_alert_delivery_duration_seconds_bucket')}))",
            "{{sink}}")], 12, 24, unit="s"),
    panel(9, "Source connected", [(f"min(vigie_source_connected{{{I}}})", "connected")], 0, 32, w=6, h=4,
          kind="stat"),
    panel(10, "Event time behind wall clock",
          [(f"time() - max(vigie_index_newest_event_time_seconds{{{I}}})", "seconds behind")], 6, 32, w=6, h=4,
          kind="stat", unit="s", desc="Large during replays of old data."),
    panel(11, "Event time: posts held ahead, released early, late",
          [(f"sum(rate(vigie_detector_posts_held_ahead_total{{{I}}}[5m]))", "held ahead"),
           (f"sum(rate(vigie_detector_reorder_forced_total{{{I}}}[5m]))", "released early"),
           (f"sum(rate(vigie_detector_late_posts_total{{{I}}}[5m]))", "late")], 12, 32, unit="ops",
          desc="Posts far ahead of their partition's watermark (held until corroborated), posts the full reorder "
               "buffer released before the watermark, and posts that came after their window closed (counted "
               "late). All should stay near zero; a steady rate means a producer clock is off or a partition lags."),
    panel(12, "Reorder buffer", [(f"sum(vigie_detector_reorder_buffered_posts{{{I}}})", "posts")], 0, 36, w=6, h=4,
          kind="stat", unit="none",
          desc="Posts waiting in the event-time reorder buffer for the watermark ([detect.event_time])."),
    panel(13, "Watermark behind wall clock",
          [(f"time() - max(vigie_detector_watermark_seconds{{{I}}})", "seconds behind")], 6, 36, w=6, h=4,
          kind="stat", unit="s",
          desc="How far the detector's event time (the minimum over the partitions' watermarks) is behind now. "
               "Large during replays of old data."),
    panel(14, "Freshness: produced to searchable / to detection (p99)",
          [(f"histogram_quantile(0.99, sum by (le) ({rate('vigie_index_produce_to_searchable_seconds_bucket')}))",
            "searchable p99"),
           (f"histogram_quantile(0.99, sum by (le) ({rate('vigie_detect_produce_to_detection_seconds_bucket')}))",
            "detection p99")], 0, 40, unit="s",
          desc="From each post's Kafka message timestamp to the index commit that made it searchable, and to "
               "its hand-off to the detector. Grows when the pipeline falls behind the stream."),
]

NARRATIVES = [
    panel(1, "Active narratives by status",
          [(f"sum by (status) (vigie_narratives_active{{{I}}})", "{{status}}")], 0, 0),
    panel(2, "Firing alerts by severity", [(f"sum by (severity) (vigie_alerts_firing{{{I}}})", "{{severity}}")],
          12, 0),
    panel(3, "Alert notifications by kind",
          [(f"sum by (kind, severity) (increase(vigie_alert_notifications_total{{{I}}}[$__rate_interval]))",
            "{{kind}} {{severity}}")], 0, 8),
    panel(4, "Top growth (rank slots)",
          [(f"max by (rank) (vigie_narrative_top_growth_ratio{{{I}}})", "#{{rank}}")], 12, 8,
          desc="Growth against baseline of the fastest-growing narratives; details at /api/v1/narratives."),
    panel(5, "Coordination share",
          [(f"sum(vigie_narratives_coordinated{{{I}}}) / clamp_min(sum(vigie_narratives_active{{{I}}}), 1)",
            "coordinated share")], 0, 16, unit="percentunit",
          desc="Share of active narratives whose coordination score is at least 0.5."),
    panel(6, "Narrative events", [(f"sum by (kind) ({rate('vigie_narrative_events_total')})", "{{kind}}")],
          12, 16, unit="ops"),
    panel(7, "Detector throughput",
          [(f"sum({rate('vigie_detector_posts_observed_total')})", "posts/s"),
           (f"sum({rate('vigie_detector_duplicates_skipped_total')})", "duplicates skipped/s")], 0, 24, unit="ops"),
    panel(8, "Detector memory", [(f"sum(vigie_detector_memory_bytes{{{I}}})", "bytes")], 12, 24, unit="bytes",
          kind="stat"),
]

for name, body in [
    ("vigie-pipeline.json", dashboard("vigie-pipeline", "Vigie / Pipeline",
                                      "Ingest, validation, index and alert delivery health.", PIPELINE)),
    ("vigie-narratives.json", dashboard("vigie-narratives", "Vigie / Narratives",
                                        "Emerging narratives, alerts and coordination.", NARRATIVES)),
]:
    (OUT / name).write_text(json.dumps(body, indent=2) + "\n")
