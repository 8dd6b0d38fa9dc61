import { Counter, Gauge, Registry } from 'prom-client';

/** The control plane's own figures, on its own registry (never the process-global one). */
export class ControlPlaneMetrics {
  readonly registry = new Registry();
  readonly watchers = new Gauge({ name: 'meshfetch_control_plane_watchers', help: 'Watch streams open now', registers: [this.registry] });
  readonly revision = new Gauge({
    name: 'meshfetch_control_plane_revision_info',
    help: 'The revision in force (value 1)',
    labelNames: ['revision'],
    registers: [this.registry],
  });
  readonly publishes = new Counter({
    name: 'meshfetch_control_plane_publishes_total',
    help: 'Revisions published, by source (api, rollback, file)',
    labelNames: ['source'],
    registers: [this.registry],
  });
  readonly pushes = new Counter({ name: 'meshfetch_control_plane_pushes_total', help: 'Revision events written to watch streams', registers: [this.registry] });
  readonly rejects = new Counter({
    name: 'meshfetch_control_plane_rejects_total',
    help: 'Requests and file edits refused, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly clientRejections = new Counter({
    name: 'meshfetch_control_plane_client_rejections_total',
    help: 'Revisions clients reported they could not apply (NACKs)',
    registers: [this.registry],
  });

  constructor() {
    new Gauge({
      name: 'meshfetch_control_plane_resident_memory_bytes',
      help: 'Resident set size of the control plane process',
      registers: [this.registry],
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
  }

  inForce(revision: string): void {
    this.revision.reset();
    this.revision.set({ revision }, 1);
  }
}
