export { Enricher, IP_TABLE_COLUMNS, DOMAIN_TABLE_COLUMNS, enrichOptionsFromConfig } from './enricher.js';
export type { AsInfo, EnrichOptions, GeoInfo, IpInfo, PslInfo } from './types.js';
export { classifyValue, type IpClass } from './ip.js';
export { splitDomain } from './psl.js';
