/** The lab page's entry (lab.ts): what the e2e tests drive as `window.tabshardLab`. */
import { type Lab, lab } from './lab.ts';

declare global {
  interface Window {
    tabshardLab: Lab;
  }
}
window.tabshardLab = lab;
