/** Routing: which destinations an alert goes to. */
import type { Alert } from '../alerts/alerts.js';
import type { RouteConfig } from './settings.js';

export class Router {
  constructor(
    private readonly routes: RouteConfig[],
    private readonly destinations: string[],
  ) {
    const known = new Set(destinations);
    for (const [i, r] of routes.entries()) {
      for (const to of r.to) {
        if (!known.has(to))
          throw new Error(`notify.routes[${i}].to: no destination named ${JSON.stringify(to)}`);
      }
    }
  }

  /** Destinations of the alert, in configuration order. No routes: all of them. */
  destinationsFor(a: Alert): string[] {
    if (this.routes.length === 0) return [...this.destinations];
    const out = new Set<string>();
    for (const r of this.routes) if (routeMatches(r, a)) for (const d of r.to) out.add(d);
    return this.destinations.filter((d) => out.has(d));
  }
}

export function routeMatches(r: RouteConfig, a: Alert): boolean {
  const m = r.match ?? {};
  if (m.severity && !m.severity.includes(a.severity)) return false;
  if (m.detection && !m.detection.includes(a.detection)) return false;
  if (m.tags && !m.tags.some((t) => a.tags.includes(t))) return false;
  return true;
}
