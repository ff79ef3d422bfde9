// The browser globals the SDK uses, named once for the whole bundle.
export const w = window;
export const d = document;
export const n = navigator;
