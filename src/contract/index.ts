export * from './api.ts';
export * from './job.ts';
