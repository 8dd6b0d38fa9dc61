export { gotTransport } from './transport/got.ts';
