/**
 * @usm/client/node: the parts of the client library that need Node's file system. Kept out of
 * the package entry so that a browser bundle of `@usm/client` never pulls in node:fs.
 *
 * @example
 * import { NodeFileStore } from '@usm/client/node';
 * const store = await NodeFileStore.open({ directory: './state', passphrase: process.env.USM_PASSPHRASE! });
 */
export { NodeFileStore, type NodeFileStoreOptions } from './storage/node-file-store.js';
