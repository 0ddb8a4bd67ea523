// Lets `node --import ./bench/register.mjs bench/run.ts` run TypeScript directly: tsx's ESM
// loader compiles each .ts file on import and resolves @usm/* through tsconfig.json's "paths"
// (tsx reads the tsconfig.json of the working directory, so run from the repository root).
import { register } from 'tsx/esm/api';

register();
