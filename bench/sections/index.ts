/**
 * Every benchmark section, in the order `npm run bench` runs them. Adding one: a file in this
 * folder exporting `defineSection({...})` (see ../lib/section.ts), and one line here.
 */
import type { Section } from '../lib/section.js';
import { cleanup } from './cleanup.js';
import { crypto } from './crypto.js';
import { delivery } from './delivery.js';
import { handshake } from './handshake.js';
import { memory } from './memory.js';
import { scaleout } from './scaleout.js';
import { throughput } from './throughput.js';

export const sections: readonly Section[] = [
  crypto,
  handshake,
  delivery,
  throughput,
  memory,
  scaleout,
  cleanup,
];
