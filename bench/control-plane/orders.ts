/** The orders in which original.ts replays the original tool (described there). */
export const REPLAY_ORDERS = ['original', 'sequential'] as const;
export type ReplayOrder = (typeof REPLAY_ORDERS)[number];
