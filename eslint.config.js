// ESLint flat config for the browser client (src/callbox/web/js): `npm run lint`.
import js from '@eslint/js';
import globals from 'globals';

export default [
  {
    files: ['src/callbox/web/js/**/*.js'],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { ...globals.browser },
    },
    rules: {
      ...js.configs.recommended.rules,
      'no-undef': 'error',
      'no-console': 'error',
    },
  },
  {
    // The logger is the one module that writes to the console.
    files: ['src/callbox/web/js/log.js'],
    rules: { 'no-console': 'off' },
  },
];
