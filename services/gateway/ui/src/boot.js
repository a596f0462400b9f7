// Loaded before the page renders (a classic script in <head>): applies the remembered theme,
// or the configured one, so the page never flashes the other.

import { applyTheme } from './theme.js';

applyTheme();
