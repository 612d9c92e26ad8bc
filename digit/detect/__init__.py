"""Hand detection for images without a box: MediaPipe's palm detector and hand-landmark models
(Apache-2.0, read from the installed `mediapipe==0.10.21` wheel), and the crop rule that turns
detected hands into DIGIT's input crop."""
