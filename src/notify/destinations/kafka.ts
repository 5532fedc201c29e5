/**
 * Kafka topic (kafkajs): JSON value, key = alert id (so compaction and consumers dedupe a
 * resend after a crash), headers with detection and severity. SASL PLAIN/SCRAM and TLS make
 * an Azure Event Hubs Kafka endpoint work as in the seed: `ssl: true`, sasl plain with
 * username `$ConnectionString` and the connection string as password, port 9093.
 */
import { Kafka, logLevel, type Producer, type SASLOptions } from 'kafkajs';
import type { Destination, DeliveryResult, NotifyMessage } from '../destination.js';
import { failResult, okResult } from '../destination.js';
import { messageJson } from '../message.js';

export interface KafkaOptions {
  name: string;
  brokers: string[];
  topic: string;
  clientId?: string;
  ssl?: boolean;
  ca?: string;
  rejectUnauthorized?: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  timeoutMs?: number;
}

export class KafkaDestination implements Destination {
  readonly type = 'kafka';
  readonly perAlert = true;
  private producer: Producer | undefined;
  constructor(private readonly o: KafkaOptions) {}
  get name(): string {
    return this.o.name;
  }

  private async connected(): Promise<Producer> {
    if (this.producer) return this.producer;
    const kafka = new Kafka({
      clientId: this.o.clientId ?? 'talon-notify',
      brokers: this.o.brokers,
      ssl: this.o.ssl
        ? { ca: this.o.ca ? [this.o.ca] : undefined, rejectUnauthorized: this.o.rejectUnauthorized ?? true }
        : undefined,
      sasl: this.o.sasl as SASLOptions | undefined,
      connectionTimeout: this.o.timeoutMs ?? 10_000,
      requestTimeout: this.o.timeoutMs ?? 30_000,
      // The notifier retries with its own policy and records every attempt.
      retry: { retries: 2 },
      logLevel: logLevel.NOTHING,
    });
    const p = kafka.producer({ allowAutoTopicCreation: true, idempotent: false });
    await p.connect();
    this.producer = p;
    return p;
  }

  async send(messages: NotifyMessage[]): Promise<DeliveryResult[]> {
    try {
      const p = await this.connected();
      const res = await p.send({
        topic: this.o.topic,
        acks: -1,
        messages: messages.map((m) => ({
          key: m.alerts[0].alert_id,
          value: JSON.stringify(messageJson(m)),
          headers: { detection: m.detection, severity: m.severity, kind: m.kind },
        })),
      });
      const reply = res
        .map((r) => `${r.topicName}[${r.partition}]@${r.baseOffset ?? r.offset ?? '?'}`)
        .join(',');
      return messages.map(() => okResult({ reply }));
    } catch (err) {
      await this.close().catch(() => undefined);
      return messages.map(() => failResult(err, true));
    }
  }

  async close(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    if (p) await p.disconnect();
  }
}
