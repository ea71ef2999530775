// Browser stand-ins for the Node globals simple-peer and readable-stream use; esbuild injects
// them wherever a bundle refers to `Buffer` or `process` (server/gateway/assets.ts).
import { Buffer } from 'buffer/index.js';
import process from 'process/browser.js';

export { Buffer, process };
